"""One module per table: the rule that builds it, its asset, and the checks that prove it."""
