"""Ready room and peer actors to start from: ``--room-class actors.capped:CappedRoom``."""
