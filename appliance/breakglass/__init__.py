"""Break-glass plane: emergency activation issuing time-bounded SD-JWT credentials."""
