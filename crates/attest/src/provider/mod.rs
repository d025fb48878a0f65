//! Evidence providers (placeholder while being written).
