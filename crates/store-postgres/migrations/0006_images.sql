-- Images this deployment pulled, per engine, for image GC (SPEC.md §5.7): only these are
-- ever removed, once unused for GOSTINT_IMAGE_GC_AGE. Images already on an engine never
-- get a row.
CREATE TABLE pulled_images (
    engine TEXT NOT NULL,
    image TEXT NOT NULL,
    last_used BIGINT NOT NULL,
    PRIMARY KEY (engine, image)
);
