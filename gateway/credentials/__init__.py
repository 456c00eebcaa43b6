"""Provider credentials: envelope encryption and the encrypted store."""
