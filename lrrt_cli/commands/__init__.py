"""One module per ``lrrt`` subcommand; ``lrrt_cli.cli`` assembles them."""
