-- Unparseable Kafka messages → xtcp.kafka_errors, with the parser's error and the raw bytes.
CREATE MATERIALIZED VIEW IF NOT EXISTS xtcp.kafka_errors_mv TO xtcp.kafka_errors AS
SELECT _topic AS topic, _partition AS partition, _offset AS offset, _error AS error, _raw_message AS raw_message
FROM xtcp.sockets_queue
WHERE length(_error) > 0;
