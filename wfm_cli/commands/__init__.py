"""One module per area of commands; each has `register(app)`. A new service adds a module here
and a line in wfm_cli.app.COMMAND_MODULES."""
