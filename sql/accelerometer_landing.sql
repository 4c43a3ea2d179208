-- Landing table of phone accelerometer readings, one JSON object per line.
-- `user` is the customer's e-mail; `timestamp` is epoch milliseconds (UTC).
-- ${lake} is the lake root (e.g. s3://stedi-lake); stedi substitutes it.
CREATE EXTERNAL TABLE IF NOT EXISTS `accelerometer_landing` (
  `user` string COMMENT 'E-mail address of the user of the phone: the customer identity (direct identifier)',
  `timestamp` bigint COMMENT 'When the reading was taken, epoch milliseconds (UTC)',
  `x` double COMMENT 'Acceleration along the x axis of the phone',
  `y` double COMMENT 'Acceleration along the y axis of the phone',
  `z` double COMMENT 'Acceleration along the z axis of the phone'
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'FALSE', 'case.insensitive' = 'FALSE')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${lake}/accelerometer/landing/'
TBLPROPERTIES ('classification' = 'json');
