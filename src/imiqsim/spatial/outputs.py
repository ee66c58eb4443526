"""Files of a field simulation: NetCDF maps, a PNG strip of key days, an animated GIF."""
def write_field_outputs(result, out_dir): raise NotImplementedError
