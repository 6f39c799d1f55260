"""The review workflow's state, free of Qt: corrections kept safe, slices worth a look, settings."""
