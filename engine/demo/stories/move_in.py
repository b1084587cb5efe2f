"""Move-in (MOV): a handover with defects to put right."""
from __future__ import annotations


from engine.demo.player import Demo, Story
from engine.demo.stories.common import iso, owner, story


@story
def move_in_with_defects(d: Demo) -> Story:
    """MOV-1..4: a move-in in order, two defects to the developer, one overdue, rejected, then accepted."""
    yield d.at("09-16 09:00")
    m = d.start("move_in", "liu_fang", {**owner("5-0302"), "appointment_at": iso("09-16 09:00")}).id
    d.act(m, "verify_identity", "zhao_lei", {"id_type": "id_card", "purchase_contract_checked": True,
                                             "identity_verified": True})
    yield d.at("09-16 09:25")
    d.act(m, "collect_fees", "lin_cai", {"fees_amount": "3580.00", "receipt_no": "SF20250916001", "paid_by": "wechat"})
    yield d.at("09-16 09:40")
    d.act(m, "sign_agreements", "zhao_lei", {"documents_issued": True, "forms_completed": True,
                                             "agreements_signed": True, "owner_signature": "sig:5-0302-20250916"})
    d.act(m, "hand_over_keys", "zhao_lei", {"key_count": 3, "key_receipt_signature": "sig:5-0302-keys"})
    yield d.at("09-16 10:30")
    wall = d.act(m, "record_defect", "zhao_lei", {"defect_location": "主卧", "defect_description": "墙面空鼓"}).children[-1]
    yield d.at("09-16 10:45")
    drain = d.act(m, "record_defect", "zhao_lei", {"defect_location": "卫生间", "defect_description": "地漏反水"}).children[-1]
    yield d.at("09-16 11:00")
    d.act(m, "finish_inspection", "zhao_lei", {"inspection_record": "doc:yf-5-0302", "inspection_signature": "sig:何晓明"})
    d.note(f"入住 #{m}：5-0302 何晓明 核验身份→收费→签约→交钥匙→验房，遗留问题 #{wall} 墙面空鼓、#{drain} 地漏反水")
    yield d.at("09-16 14:00")
    d.act(wall, "pass_to_developer", "zhao_lei", {"developer_contact": "开发商 赵工", "rectify_by": iso("09-23 18:00")})
    d.act(drain, "pass_to_developer", "zhao_lei", {"developer_contact": "开发商 赵工", "rectify_by": iso("09-26 18:00")})
    yield d.at("09-18 10:00")
    d.act(m, "record_utilities", "zhao_lei", {"utilities": {
        "water": {"result": "pass"}, "power": {"result": "pass"}, "gas": {"result": "fail", "note": "燃气公司预约10月9日"},
        "telephone": {"result": "pass"}, "tv": {"result": "pass"}}})
    yield d.at("09-22 10:00")
    d.act(wall, "report_rectified", "wu_gang", {"rectification_note": "已铲除空鼓部位重新抹灰"})
    yield d.at("09-22 15:00")
    d.act(wall, "accept", "zhao_lei", {"accepted_by": "owner", "acceptance_signature": "sig:何晓明"})
    d.act(m, "defect_closed", "zhao_lei", {"defect_instance": wall})
    yield d.at("09-29 10:00")
    d.act(drain, "report_rectified", "wu_gang", {"rectification_note": "已调整地漏坡度"})
    yield d.at("09-29 15:00")
    d.act(drain, "reject", "zhao_lei", {"rejection_reason": "闭水试验仍反水", "rectify_by": iso("10-13 18:00")})
    d.note(f"遗留问题 #{drain} 逾期整改（09-26 18:00 已催办），复验不合格退回，新期限 10-13")
    yield d.at("10-11 10:00")
    d.act(drain, "report_rectified", "wu_gang", {"rectification_note": "重做卫生间地面找坡"})
    yield d.at("10-13 10:00")
    d.act(drain, "accept", "zhao_lei", {"accepted_by": "owner", "acceptance_signature": "sig:何晓明"})
    d.act(m, "defect_closed", "zhao_lei", {"defect_instance": drain})
    yield d.at("10-13 11:00")
    d.act(m, "complete", "zhao_lei")
    d.note(f"入住 #{m} 两项遗留问题均验收消项，入住手续完成（MOV-2）")
