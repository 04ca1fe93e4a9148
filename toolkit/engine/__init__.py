"""Running work over hosts: the executor (bounded pool, events), the step registry and typed step
context, the playbook runner, the cluster lock, readiness waiting."""
