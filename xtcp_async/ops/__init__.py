"""Operations: metrics, health endpoints (issue 6)."""
