"""flopex exchange: how it trades."""
