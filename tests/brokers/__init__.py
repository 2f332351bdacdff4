"""Real brokers the integration tests start themselves (installed by ``make brokers``)."""
