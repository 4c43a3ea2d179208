-- Landing table of customer records, one JSON object per line.
-- The consent fields are absent (not null) when a customer did not consent.
-- ${lake} is the lake root (e.g. s3://stedi-lake); stedi substitutes it.
CREATE EXTERNAL TABLE IF NOT EXISTS `customer_landing` (
  `customerName` string COMMENT 'Full name of the customer (direct identifier)',
  `email` string COMMENT 'E-mail address: the customer identity (direct identifier)',
  `phone` string COMMENT 'Phone number (direct identifier)',
  `birthDay` string COMMENT 'Date of birth, YYYY-MM-DD (direct identifier)',
  `serialNumber` string COMMENT 'Serial number of the Step Trainer the customer owns',
  `registrationDate` bigint COMMENT 'When the customer registered, epoch milliseconds (UTC)',
  `lastUpdateDate` bigint COMMENT 'When this record was written, epoch milliseconds (UTC); the latest record of a customer is current',
  `shareWithResearchAsOfDate` bigint COMMENT 'Since when the customer consents to research use, epoch milliseconds (UTC); absent without consent',
  `shareWithPublicAsOfDate` bigint COMMENT 'Since when the customer consents to public sharing, epoch milliseconds (UTC); absent without consent',
  `shareWithFriendsAsOfDate` bigint COMMENT 'Since when the customer consents to sharing with friends, epoch milliseconds (UTC); absent without consent'
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'FALSE', 'case.insensitive' = 'FALSE')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${lake}/customer/landing/'
TBLPROPERTIES ('classification' = 'json');
