"""Regional weather-driven warning (地质灾害气象风险预警): rainfall grids → levels → areas → exposure."""
