//! Hand-written tests of the generated codecs.
