"""What the user wrote, pure: YAML with a line map, the inventory schema, the precedence merge,
playbooks, the hardware table, secret sources, the recorded inventory."""
