"""The storage layer: where tables live, how they are read and written, and the catalog.

Assets compute DataFrames; everything about paths, formats and catalogs lives here.
"""
