"""Community monitoring (群测群防) in the field: patrols, zero reports, quick reports, the two cards, write-offs."""
