"""The living catalogue: products as durable shared state (libs.products.store), the rules they satisfy
(libs.products.model), the CatalogService logic (libs.products.catalog) and each replica's in-memory view that
follows the change sequence (libs.products.view). `libs.catalog` is the prepared dataset the catalogue is seeded
from."""
