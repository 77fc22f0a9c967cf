"""Commands added to the CLI by later packages (validate, plan, calibrate, ...)."""
