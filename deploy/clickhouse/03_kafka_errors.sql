-- Dead letters: Kafka messages the queue could not parse, with the parser's error. A schema
-- mistake shows up here (and in the count of this table) instead of a consumer re-reading the
-- same offsets forever.
--
-- Parameter: ttl_days (same retention as the sockets table).
CREATE TABLE IF NOT EXISTS xtcp.kafka_errors
(
    received_at DateTime DEFAULT now(),
    topic       LowCardinality(String),
    partition   UInt64,
    offset      UInt64,
    error       String,
    raw_message String CODEC(ZSTD(3))
)
ENGINE = MergeTree
PARTITION BY toDate(received_at)
ORDER BY (topic, partition, offset)
TTL received_at + INTERVAL {ttl_days:UInt32} DAY;
