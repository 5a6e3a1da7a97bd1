"""crisiswatch: Kafka-native brand crisis detection that pauses publishing when a crisis breaks."""

__version__ = "0.1.0"
