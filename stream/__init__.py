"""Stream processing: the faust app, its agents and the topic contracts that wire detectors to Kafka."""
