"""Files <-> Case: BraTS folders, NIfTI, DICOM; label conventions; geometry kept exactly."""
