"""The SQL mirror: the engine (`engine`), the models, the one store every write goes through
(`store`, with the statements and row values it writes in `statements` and `rows`), the reads
(`queries`) and the migrations' runner (`migrate`)."""
