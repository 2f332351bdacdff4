-- The Kafka consumer: reads the Kafka sink's protobuf-list payloads (one ProtobufList message per
-- Kafka record) with this project's schema. It stores nothing; the two materialized views move
-- parsed rows into xtcp.sockets and unparseable messages into xtcp.kafka_errors.
--
-- Parameters: kafka_brokers ('host1:9092,host2:9092'), kafka_topic, kafka_group.
-- The schema file: proto/xtcp_flat_record.proto copied into the server's format_schema_path
-- (default /var/lib/clickhouse/format_schemas/); the name below is relative to that directory.
-- Columns are named after the record's fields; a field not listed here is skipped.
CREATE TABLE IF NOT EXISTS xtcp.sockets_queue
(
    timestamp_ns                          Int64,
    hostname                              String,
    location                              String,
    label                                 String,
    tag                                   String,
    netns                                 String,
    daemon_version                        String,
    poll_id                               UInt64,
    record_counter                        UInt64,
    poll_dump_interrupted                 Bool,
    inet_diag_msg_family                  UInt32,
    inet_diag_msg_family_name             String,
    inet_diag_msg_state                   UInt32,
    inet_diag_msg_socket_source           String,
    inet_diag_msg_socket_source_port      UInt32,
    inet_diag_msg_socket_destination      String,
    inet_diag_msg_socket_destination_port UInt32,
    inet_diag_msg_socket_interface        UInt32,
    inet_diag_msg_socket_cookie           UInt64,
    inet_diag_msg_socket_dest_asn         UInt64,
    inet_diag_msg_socket_next_hop_asn     UInt64,
    inet_diag_msg_rqueue                  UInt32,
    inet_diag_msg_wqueue                  UInt32,
    inet_diag_msg_uid                     UInt32,
    inet_diag_msg_inode                   UInt32,
    congestion_algorithm_string           String,
    tcp_info_length                       UInt32,
    tcp_info_ca_state                     UInt32,
    tcp_info_retransmits                  UInt32,
    tcp_info_rto                          UInt32,
    tcp_info_snd_mss                      UInt32,
    tcp_info_rcv_mss                      UInt32,
    tcp_info_unacked                      UInt32,
    tcp_info_sacked                       UInt32,
    tcp_info_lost                         UInt32,
    tcp_info_retrans                      UInt32,
    tcp_info_rtt                          UInt32,
    tcp_info_rtt_var                      UInt32,
    tcp_info_min_rtt                      UInt32,
    tcp_info_rcv_rtt                      UInt32,
    tcp_info_snd_ssthresh                 UInt32,
    tcp_info_snd_cwnd                     UInt32,
    tcp_info_reordering                   UInt32,
    tcp_info_total_retrans                UInt32,
    tcp_info_pacing_rate                  UInt64,
    tcp_info_delivery_rate                UInt64,
    tcp_info_bytes_acked                  UInt64,
    tcp_info_bytes_received               UInt64,
    tcp_info_bytes_sent                   UInt64,
    tcp_info_bytes_retrans                UInt64,
    tcp_info_segs_out                     UInt32,
    tcp_info_segs_in                      UInt32,
    tcp_info_data_segs_out                UInt32,
    tcp_info_data_segs_in                 UInt32,
    tcp_info_busy_time                    UInt64,
    tcp_info_rwnd_limited                 UInt64,
    tcp_info_sndbuf_limited               UInt64,
    tcp_info_delivered                    UInt32,
    tcp_info_delivered_ce                 UInt32,
    tcp_info_dsack_dups                   UInt32,
    tcp_info_reord_seen                   UInt32,
    tcp_info_snd_wnd                      UInt32,
    tcp_info_rcv_wnd                      UInt32,
    tcp_info_total_rto                    UInt32
)
ENGINE = Kafka
SETTINGS kafka_broker_list = {kafka_brokers:String},
         kafka_topic_list = {kafka_topic:String},
         kafka_group_name = {kafka_group:String},
         kafka_format = 'ProtobufList',
         kafka_schema = 'xtcp_flat_record.proto:XtcpFlatRecord',
         -- A message that does not parse goes to the _error/_raw_message virtual columns
         -- (see 06_kafka_errors_mv.sql) instead of stalling the consumer.
         kafka_handle_error_mode = 'stream';
