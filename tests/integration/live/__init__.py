"""Live tests: the collector against the running kernel, inside network namespaces the tests create."""
