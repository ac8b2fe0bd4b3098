-- Averages stay on the question's scale and top-box shares are shares.
select survey_id, question_id, week_start, question_type, avg_score, top_box_share
from {{ ref('hotjar__ratings') }}
where avg_score is null or avg_score < 1 or avg_score > scale_max
    or top_box_share is null or top_box_share < 0 or top_box_share > 1
