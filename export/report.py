"""`ExportReport`: what `export_onnx` wrote and how it was checked."""

import dataclasses

from keras_longformer.export import verify as verify_lib


@dataclasses.dataclass
class ExportReport:
    """What `export_onnx` wrote and how it was checked.

    Attributes:
        path: the ONNX file written (or that would have been written).
        opset: the ONNX opset.
        inputs: input name -> {"dims": [...], "dtype": ...}; dims are ints
            or names such as `"batch"`.
        outputs: output name -> {"dims": [...], "dtype": ...}.
        rows: one `VerificationRow` per checked case; empty if not verified.
        verified: whether the verification sweep ran and passed.
        external_data: path of the external data file, or None.
        precision: `"float32"`, `"float16"` or `"int8"`.
        weight_bytes: bytes of the file's weights (its initializers).
        preprocessor: class name of the model's preprocessor, which the
            file does not contain (tokenization stays in Python), or None.
    """

    path: str
    opset: int
    inputs: dict
    outputs: dict
    rows: list = dataclasses.field(default_factory=list)
    verified: bool = False
    external_data: str = None
    precision: str = "float32"
    weight_bytes: int = None
    preprocessor: str = None

    @property
    def max_abs_error(self):
        errors = [row.max_abs_error for row in self.rows]
        return max(errors) if errors else None

    @property
    def max_relative_error(self):
        """Max abs error over each output's scale (its largest magnitude)."""
        errors = [row.relative_error for row in self.rows]
        return max(errors) if errors else None

    @property
    def failures(self):
        return [row for row in self.rows if not row.ok]

    def table(self):
        """The report as text: file, inputs, outputs and the verification table."""

        def dims(spec):
            return "[" + ", ".join(str(d) for d in spec) + "]"

        lines = [f"ONNX file: {self.path} (opset {self.opset}, {self.precision})"]
        if self.external_data:
            lines.append(f"external data: {self.external_data}")
        if self.weight_bytes is not None:
            lines.append(f"weights: {self.weight_bytes:,} bytes")
        if self.preprocessor:
            lines.append(
                f"preprocessor: {self.preprocessor} is not in the file; tokenize in Python "
                "(the model's `preprocessor`, or its preset) and feed the features below"
            )
        for title, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            lines.append(f"{title}:")
            for name, spec in specs.items():
                lines.append(f"  {name:<22} {dims(spec['dims'])} {spec['dtype']}")
        if self.rows:
            lines.append(
                f"verification against the float32 Keras model ({self.criterion}): "
                f"{len(self.rows)} cases, {len(self.rows) - len(self.failures)} ok, "
                f"max abs error {self.max_abs_error:.3e}, "
                f"max relative error {self.max_relative_error:.3e}"
            )
            lines.append(verify_lib.format_rows(self.rows))
        else:
            lines.append("verification: not run")
        return "\n".join(lines)

    @property
    def criterion(self):
        return verify_lib.CRITERIA.get(self.precision, verify_lib.CRITERIA["float32"])

    def __str__(self):
        return self.table()
