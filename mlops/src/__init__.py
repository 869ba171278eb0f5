"""Model code run as Azure ML pipeline steps: the scripts import only their siblings here."""
