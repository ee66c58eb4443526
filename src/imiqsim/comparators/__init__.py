"""Comparators: vehicle (a product with no drug, see imiqsim.regimen.PRODUCTS) and cryotherapy."""
