"""Media for MMS: bytes stored once by content hash, owned per account, served by signed URLs."""
