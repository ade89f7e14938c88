"""FieldLine edge agent."""
