"""Write side: readers, mappings, coordinate systems, validation and bulk loads."""
