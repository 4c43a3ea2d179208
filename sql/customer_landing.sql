-- Landing table of customer records, one JSON object per line.
-- The consent fields are absent (not null) when a customer did not consent.
-- ${lake} is the lake root (e.g. s3://stedi-lake); stedi substitutes it.
CREATE EXTERNAL TABLE IF NOT EXISTS `customer_landing` (
  `customerName` string,
  `email` string,
  `phone` string,
  `birthDay` string,
  `serialNumber` string,
  `registrationDate` bigint,
  `lastUpdateDate` bigint,
  `shareWithResearchAsOfDate` bigint,
  `shareWithPublicAsOfDate` bigint,
  `shareWithFriendsAsOfDate` bigint
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'FALSE', 'case.insensitive' = 'FALSE')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${lake}/customer/landing/'
TBLPROPERTIES ('classification' = 'json');
