"""Pipeline stages. Each module holds one idea; each stage is applied per batch inside Ray Data."""
