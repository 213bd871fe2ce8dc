"""Code shared by the master, edge and worker services: events/actions, config, the I/O loop."""
