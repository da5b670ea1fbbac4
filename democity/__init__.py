"""The demo city: a realistic synthetic 坪山区 generated from its real outline and codes,
written as files (GeoPackage, CSV, mappings) and loaded through the ordinary loads of
``etl``, like any district's exports. Not part of the write path: ``etl`` never imports it
(``democity -> etl -> onemap`` in the import contract)."""
