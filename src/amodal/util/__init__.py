"""Small shared helpers with no knowledge of models: safe file writing, strict config loading."""
