"""Static files of the page (a package so that wheels ship them)."""
