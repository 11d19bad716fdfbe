"""The REST API for billing systems (/api/v1/): tokens, resources, provisioning verbs, usage."""
