-- Landing table of Step Trainer readings, one JSON object per line.
-- `sensorReadingTime` is epoch milliseconds (UTC); `distanceFromObject` in centimetres.
-- ${lake} is the lake root (e.g. s3://stedi-lake); stedi substitutes it.
CREATE EXTERNAL TABLE IF NOT EXISTS `step_trainer_landing` (
  `sensorReadingTime` bigint COMMENT 'When the reading was taken, epoch milliseconds (UTC)',
  `serialNumber` string COMMENT 'Serial number of the Step Trainer that took the reading',
  `distanceFromObject` int COMMENT 'Distance from the object in front of the sensor, centimetres'
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'FALSE', 'case.insensitive' = 'FALSE')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${lake}/step_trainer/landing/'
TBLPROPERTIES ('classification' = 'json');
