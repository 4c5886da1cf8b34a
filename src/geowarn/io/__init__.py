"""Import and export of the register: GeoJSON, CSV/XLSX ledgers, Shapefile, GeoPackage."""
