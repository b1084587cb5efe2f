"""HOW instances are kept: the only package that imports SQLModel / SQLAlchemy."""
