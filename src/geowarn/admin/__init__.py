"""Administrative divisions (行政区划): GB/T 2260 codes and the unit tree every record belongs to."""
