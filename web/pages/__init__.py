"""The dashboard's pages, one module per area; each handler calls services only."""
