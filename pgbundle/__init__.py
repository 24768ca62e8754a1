"""Everything that is not a construct: the values model, config rendering, workstation tools, the CLI."""
