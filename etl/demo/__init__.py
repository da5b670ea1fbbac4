"""The demo city: a realistic synthetic 坪山区 generated from its real outline and codes."""
