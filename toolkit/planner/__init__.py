"""Pure planning: inventory + config.json + plugins -> Plan, every value with its origin; the memory
estimate; the plugin system."""
