"""Pure detection logic: no Kafka, no I/O. Texts and time buckets in, decisions out."""
