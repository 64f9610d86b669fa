"""Chapter 11's wrong answers: lowering to a .pte file with its report; the refusing exporter."""

from tests.grading.mistakes import Mistake

LOWERED_11_1 = ", partitioner=[XnnpackPartitioner()])\n    module = "
COMPUTES_11_1 = 'not in ("getitem",\n' + " " * 74 + "DELEGATE_CALL)"
REPORT_11_1 = "    return EdgeReport(path, partitions, dict(portable), worst)"
OUTSIDE_11_2 = '            outside.append(f"{operator_name(node)} (from {where})")'

MISTAKES = [
    Mistake("no-partitioner", "11.1", "no XNNPACK delegate",
            replace=((LOWERED_11_1, ")\n    module = "),)),
    Mistake("counts-the-delegate-call", "11.1", "do not count them",
            replace=((COMPUTES_11_1, '!= ""'),)),
    Mistake("merges-the-subgraphs", "11.1", "splits the delegated graph in two",
            replace=((REPORT_11_1, """    merged = Counter()
    for partition in partitions:
        merged.update(partition)
    return EdgeReport(path, [dict(merged)], dict(portable), worst)"""),)),
    Mistake("parity-on-a-constant-input", "11.1", "over every input",
            replace=(("        one = inputs[i:i + 1].contiguous()",
                      "        one = torch.ones_like(inputs[:1])"),)),
    Mistake("left-in-train-mode", "11.1", "eval mode",
            replace=(("    model.eval()\n    program = torch.export.export(model, (inputs[:1]",
                      "    program = torch.export.export(model, (inputs[:1]"),)),
    Mistake("copies-the-library", "11.1", "write it yourself", append='''
from vampire_detector.edge import delegation, export_for_edge, lower_to_xnnpack, save_pte


def lower_with_report(model, inputs, path):
    edge = lower_to_xnnpack(export_for_edge(model, image_size=inputs.shape[-1]))
    found = delegation(edge)
    path = save_pte(edge, path)
    method = Runtime.get().load_program(path).load_method("forward")
    with torch.no_grad():
        worst = max(float((method.execute([inputs[i:i + 1]])[0] - model(inputs[i:i + 1]))
                          .abs().max()) for i in range(len(inputs)))
    return EdgeReport(path, [found.delegated], found.portable, worst)
'''),
    Mistake("checks-only-the-first-node", "11.2", "name every operator",
            replace=((OUTSIDE_11_2, OUTSIDE_11_2 + "\n            break"),)),
    Mistake("refusal-without-the-operator", "11.2", "name every operator",
            replace=(("""f"XNNPACK: {', '.join(outside)}; nothing was written\"""",
                      """"XNNPACK; nothing was written\""""),)),
    Mistake("refusal-without-the-module", "11.2", "which submodule",
            replace=((OUTSIDE_11_2, "            outside.append(operator_name(node))"),)),
    Mistake("writes-before-checking", "11.2", "file was written",
            replace=(("    outside = []\n",
                      "    Path(path).write_bytes(edge.to_executorch().buffer)\n"
                      "    outside = []\n"),)),
    Mistake("getitem-counts-as-portable", "11.2", "fully delegated, yet it was refused",
            replace=(("""operator_name(node) not in ("getitem", DELEGATE_CALL):""",
                      """operator_name(node) != DELEGATE_CALL:"""),)),
    Mistake("copies-the-library", "11.2", "write it yourself", append='''
from vampire_detector.edge import NotDelegatedError, require_full_delegation


def export_fully_delegated(model, example, path):
    model.eval()
    edge = to_edge_transform_and_lower(torch.export.export(model, (example,)),
                                       partitioner=[XnnpackPartitioner()])
    try:
        require_full_delegation(edge)
    except NotDelegatedError as error:
        raise PortableOperatorsError(str(error)) from None
    path = Path(path)
    path.write_bytes(edge.to_executorch().buffer)
    return path
'''),
]
